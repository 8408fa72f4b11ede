import Foundation
import HTTPTypes
import Hummingbird
import LeaderboardAPI
import Logging
import NIOCore
import SwiftProtobuf
import UntrustedInput

/// The human side of device verification: `GET /verify` (code + email + a proof-of-work solved in the browser),
/// `/assets/verify.js` (the solver), and `GET /verify/confirm?token=` (the emailed link).
enum VerifyPages {
    static func add(to router: Router<GatewayRequestContext>, dependencies: GatewayDependencies, auth: AuthClient) {
        router.get("/verify") { request, _ in
            let code = (try? request.query(RouteQueries.verifyPage))?["code"] ?? ""
            return page(status: .ok, title: "Verify your device", body: formBody(code: code))
        }
        router.get("/assets/verify.js") { _, _ in
            Response(
                status: .ok,
                headers: [
                    .contentType: "text/javascript; charset=utf-8", .cacheControl: "public, max-age=300",
                    .xContentTypeOptions: "nosniff",
                ],
                body: .init(byteBuffer: ByteBuffer(string: script)))
        }
        router.group().add(
            middleware: ClientRateLimitMiddleware(
                policy: dependencies.policies.verification, rateLimiter: dependencies.rateLimiter,
                clock: dependencies.clock)
        )
        .get("/verify/confirm") { request, context in
            let token = (try? request.query(RouteQueries.confirmPage))?["token"] ?? ""
            do {
                let confirmed = try await auth.confirmEmail(.with { $0.token = token })
                return page(
                    status: .ok, title: "Device verified",
                    body: """
                        <p>Device <code>\(escape(confirmed.machineID))</code> is verified.</p>
                        <p>Return to your benchmark client and activate it with the registration code.</p>
                        """)
            } catch {
                let problem = Problem.from(error)
                if problem.status.code >= 500 {
                    context.logger.error("confirm page failed", metadata: ["error": "\(String(reflecting: error))"])
                }
                return page(
                    status: problem.status, title: "Verification failed",
                    body:
                        "<p>\(escape(problem.detail))</p><p>Request a new link from <a href=\"/verify\">the verify page</a>.</p>"
                )
            }
        }
    }

    static func page(status: HTTPResponse.Status, title: String, body: String) -> Response {
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            <title>\(escape(title)) · LLM Inference Leaderboard</title>
            <style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}
            label{display:block;margin:1rem 0 .25rem}input{font:inherit;width:100%;padding:.4rem}
            button{font:inherit;margin-top:1rem;padding:.5rem 1rem}#status{margin-top:1rem}</style>
            </head><body><h1>\(escape(title))</h1>
            \(body)
            </body></html>
            """
        return Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8",
                .cacheControl: "no-store",
                .contentSecurityPolicy:
                    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
                .xContentTypeOptions: "nosniff",
                // The confirm link carries its token in the query: never send it on as a referrer.
                .referrerPolicy: "no-referrer",
            ],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func formBody(code: String) -> String {
        """
        <p>Enter the registration code your benchmark client showed and your email address. Your browser solves a
        short proof-of-work puzzle instead of a captcha; then we email you a link that completes verification.</p>
        <form id="verify">
        <label for="code">Registration code</label>
        <input id="code" name="registration_code" required autocomplete="off" value="\(escape(code))" placeholder="ABCD-EFGH-JKMN">
        <label for="email">Email</label>
        <input id="email" name="email" type="email" required autocomplete="email">
        <button type="submit">Verify</button>
        </form>
        <p id="status" role="status"></p>
        <script src="/assets/verify.js"></script>
        """
    }

    /// HTML-escapes text for element content and double-quoted attributes.
    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }

    /// The page script: a self-contained SHA-256 (Web Crypto is async and missing on plain-HTTP origins) and the
    /// solver, which counts up in base 36 exactly like the server's reference solver. Runs under Node for tests
    /// (`module.exports.solve`).
    static let script = #"""
        "use strict";
        const K = new Uint32Array([
          0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
          0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
          0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
          0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
          0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
          0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
          0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
          0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
        const W = new Uint32Array(64);

        // SHA-256 of a byte array, as eight big-endian 32-bit words.
        function sha256(bytes) {
          const blocks = (bytes.length + 9 + 63) >> 6;
          const message = new Uint8Array(blocks * 64);
          message.set(bytes);
          message[bytes.length] = 0x80;
          const view = new DataView(message.buffer);
          view.setUint32(blocks * 64 - 4, bytes.length * 8);
          const h = new Uint32Array([
            0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
          for (let block = 0; block < blocks; block++) {
            for (let i = 0; i < 16; i++) W[i] = view.getUint32(block * 64 + i * 4);
            for (let i = 16; i < 64; i++) {
              const x = W[i - 15], y = W[i - 2];
              const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
              const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
              W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
            }
            let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
            for (let i = 0; i < 64; i++) {
              const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
              const t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
              const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
              const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
              k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
            }
            h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
          }
          return h;
        }

        function leadingZeroBits(words) {
          let count = 0;
          for (const word of words) {
            if (word === 0) { count += 32; continue; }
            return count + Math.clz32(word);
          }
          return count;
        }

        function base64urlDecode(text) {
          const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
          return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
        }

        // Finds the first base-36 counter string s with SHA-256(challenge ‖ s) starting with `difficulty` zero bits.
        // Works in slices so the page stays responsive; `progress` gets the number of hashes tried.
        async function solve(challenge, difficulty, progress) {
          const prefix = base64urlDecode(challenge);
          const buffer = new Uint8Array(prefix.length + 16);
          buffer.set(prefix);
          for (let counter = 0; ; ) {
            const end = counter + 20000;
            for (; counter < end; counter++) {
              const candidate = counter.toString(36);
              for (let i = 0; i < candidate.length; i++) buffer[prefix.length + i] = candidate.charCodeAt(i);
              if (leadingZeroBits(sha256(buffer.subarray(0, prefix.length + candidate.length))) >= difficulty) {
                return candidate;
              }
            }
            if (progress) progress(counter);
            await new Promise((resolve) => setTimeout(resolve, 0));
          }
        }

        async function submit(event) {
          event.preventDefault();
          const status = document.getElementById("status");
          const button = document.querySelector("#verify button");
          button.disabled = true;
          try {
            status.textContent = "Fetching a challenge…";
            const challenge = await (await fetch("/api/v1/devices/challenge")).json();
            status.textContent = "Solving the proof-of-work (a few seconds)…";
            const solution = await solve(challenge.challenge, challenge.difficulty_bits, (tried) => {
              status.textContent = "Solving the proof-of-work… " + tried.toLocaleString() + " hashes";
            });
            status.textContent = "Sending…";
            const response = await fetch("/api/v1/devices/verify", {
              method: "POST",
              headers: { "Content-Type": "application/json" },
              body: JSON.stringify({
                registration_code: document.getElementById("code").value,
                email: document.getElementById("email").value,
                challenge_id: challenge.challenge_id,
                pow_solution: solution,
              }),
            });
            const answer = await response.json();
            status.textContent = response.ok
              ? "Check your inbox: we sent a link to finish verification."
              : (answer.detail || "Verification failed.");
          } catch (error) {
            status.textContent = "Something went wrong: " + error;
          } finally {
            button.disabled = false;
          }
        }

        if (typeof document !== "undefined") {
          document.getElementById("verify").addEventListener("submit", submit);
        }
        if (typeof module !== "undefined") {
          module.exports = { sha256, leadingZeroBits, solve };
        }
        """#
}

extension HTTPField.Name {
    static let referrerPolicy = Self("Referrer-Policy")!
}
