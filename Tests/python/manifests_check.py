"""Offline checks of the compose files and Kubernetes manifests (deploy/), run by EndToEndTests/DeployManifestTests.
scripts/deploy-check runs the compose files for real; this holds them to the rules on every test run.

    manifests_check.py DEPLOY_DIR LIST_TARGETS_FILE KUBERNETES_VERSION [README]

Compose: every service has a health check and a restart policy, depends on what it calls being healthy, reads
every secret from a mounted file, and names only settings the binary knows; data lives in volumes.

Renders each overlay (kubectl kustomize when kubectl is installed, else a small renderer of the kustomize features
the manifests use), validates every object against the Kubernetes OpenAPI schemas of KUBERNETES_VERSION
(kubernetes-validate, strict: unknown fields are errors), then checks what a schema cannot: probes, limits, the
drain timing, the security context, that Services and budgets select pods, that only the gateway is public and that
gRPC reaches each service only from its callers (the call graph `leaderboard serve --list-targets` prints), and that
every LEADERBOARD_* variable is a setting the binary knows. Prints one line per finding; exits 1 on any failure.
"""

import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile

import kubernetes_validate
import yaml

deploy, targets_file, kube_version = sys.argv[1:4]
readme = sys.argv[4] if len(sys.argv) > 4 else os.path.join(deploy, "..", "README.md")
failures = []
notes = []


def fail(text):
    failures.append(text)


# --- render -------------------------------------------------------------------------------------------------------
def render_fallback(directory):
    """The kustomize subset deploy/k8s uses: resources, namespace, labels, images, secretGenerator (files)."""
    with open(os.path.join(directory, "kustomization.yaml")) as handle:
        kustomization = yaml.safe_load(handle)
    objects = []
    for resource in kustomization.get("resources", []):
        path = os.path.normpath(os.path.join(directory, resource))
        if os.path.isdir(path):
            objects += render_fallback(path)
        else:
            with open(path) as handle:
                objects += [doc for doc in yaml.safe_load_all(handle) if doc]
    for generator in kustomization.get("secretGenerator", []):
        data = {}
        for name in generator.get("files", []):
            with open(os.path.join(directory, name), "rb") as handle:
                data[os.path.basename(name)] = base64.b64encode(handle.read()).decode()
        objects.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                        "metadata": {"name": generator["name"]}, "data": data})
    for group in kustomization.get("labels", []):
        for item in objects:
            item.setdefault("metadata", {}).setdefault("labels", {}).update(group.get("pairs", {}))
    namespace = kustomization.get("namespace")
    if namespace:
        for item in objects:
            if item["kind"] != "Namespace":
                item["metadata"]["namespace"] = namespace
    for image in kustomization.get("images", []):
        for item in objects:
            for container in item.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image.get('newTag', 'latest')}"
    return objects


def render(overlay):
    if shutil.which("kubectl"):
        output = subprocess.run(["kubectl", "kustomize", overlay], capture_output=True, text=True)
        if output.returncode != 0:
            fail(f"kubectl kustomize {overlay}: {output.stderr.strip()}")
            return []
        return [doc for doc in yaml.safe_load_all(output.stdout) if doc]
    return render_fallback(overlay)


work = tempfile.mkdtemp(prefix="k8s-check-")
shutil.copytree(os.path.join(deploy, "k8s"), os.path.join(work, "k8s"))
for name in ["master_key", "service_token", "database_url"]:
    with open(os.path.join(work, "k8s", "secrets", name), "w") as handle:
        handle.write("placeholder-for-rendering\n")
renderer = "kubectl kustomize" if shutil.which("kubectl") else "the built-in kustomize subset (no kubectl here)"
notes.append(f"rendered with {renderer}; schemas of Kubernetes {kube_version} (kubernetes-validate, strict)")

# --- what the binary says -----------------------------------------------------------------------------------------
callers = {}
with open(targets_file) as handle:
    for line in handle:
        match = re.match(r"(\w+)\s.*?(?:\(calls: ([\w,]+)\))?\s*$", line.strip())
        if not match:
            continue
        for callee in (match.group(2) or "").split(","):
            if callee:
                callers.setdefault(callee, set()).add(match.group(1))
known_settings = set(re.findall(r"`(LEADERBOARD_[A-Z0-9_]+)`", open(readme).read()))

# --- per overlay --------------------------------------------------------------------------------------------------
for overlay in ["monolith", "microservices"]:
    objects = render(os.path.join(work, "k8s", "overlays", overlay))
    kinds = {}
    for item in objects:
        kinds.setdefault(item["kind"], []).append(item)
        label = f"{overlay}: {item['kind']}/{item['metadata']['name']}"
        try:
            kubernetes_validate.validate(item, kube_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            fail(f"{label}: {error.message} at {'.'.join(str(p) for p in error.path)}")
        except Exception as error:  # an unknown kind or version is a finding too
            fail(f"{label}: {error}")
        if item["kind"] != "Namespace" and item["metadata"].get("namespace") != "leaderboard":
            fail(f"{label}: not in the leaderboard namespace")

    deployments = kinds.get("Deployment", [])
    pods = {}
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        spec = deployment["spec"]["template"]["spec"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        pods[name] = labels
        if deployment["spec"]["selector"]["matchLabels"].items() - labels.items():
            fail(f"{overlay}: {name}: its selector does not match its pods")
        if spec.get("enableServiceLinks") is not False:
            fail(f"{overlay}: {name}: enableServiceLinks is not false")
        context = spec.get("securityContext", {})
        if not context.get("runAsNonRoot") or context.get("runAsUser") != 10001:
            fail(f"{overlay}: {name}: does not run as the image's unprivileged user")
        for container in spec["containers"]:
            where = f"{overlay}: {name}/{container['name']}"
            for probe in ["startupProbe", "livenessProbe", "readinessProbe"]:
                if probe not in container:
                    fail(f"{where}: no {probe}")
            if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/health/ready":
                fail(f"{where}: readiness does not ask /health/ready")
            resources = container.get("resources", {})
            for kind in ["requests", "limits"]:
                if not {"cpu", "memory"} <= set(resources.get(kind, {})):
                    fail(f"{where}: no cpu and memory {kind}")
            sleep = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            pre_stop = int(sleep[1]) if len(sleep) == 2 and sleep[0] == "sleep" else None
            if pre_stop is None:
                fail(f"{where}: no preStop delay")
            env = {entry["name"]: entry.get("value") for entry in container.get("env", [])}
            configmaps = [source["configMapRef"]["name"] for source in container.get("envFrom", []) if "configMapRef" in source]
            for configmap in kinds.get("ConfigMap", []):
                if configmap["metadata"]["name"] in configmaps:
                    env = {**configmap["data"], **env}
            drain = int(env.get("LEADERBOARD_SHUTDOWN_GRACE_SECONDS", "30"))
            if spec.get("terminationGracePeriodSeconds", 30) <= drain + (pre_stop or 0):
                fail(f"{where}: terminationGracePeriodSeconds is not longer than preStop + the {drain} s drain")
            for variable in env:
                if variable.startswith("LEADERBOARD_") and variable not in known_settings:
                    fail(f"{where}: {variable} is not a setting (README 'Configuration')")
            if not container.get("securityContext", {}).get("readOnlyRootFilesystem"):
                fail(f"{where}: root filesystem is writable")
            ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
            for probe in ["startupProbe", "livenessProbe", "readinessProbe"]:
                port = container.get(probe, {}).get("httpGet", {}).get("port")
                if port is not None and port not in ports and port not in ports.values():
                    fail(f"{where}: {probe} uses port {port}, which the container does not declare")
            secrets = {volume["secret"]["secretName"] for volume in spec.get("volumes", []) if "secret" in volume}
            generated = {secret["metadata"]["name"] for secret in kinds.get("Secret", [])}
            if not secrets <= generated:
                fail(f"{where}: mounts secrets {secrets - generated} that the overlay does not make")
            for variable, value in env.items():
                if variable.endswith("_FILE") and value and not any(
                        value.startswith(mount["mountPath"]) for mount in container.get("volumeMounts", [])):
                    fail(f"{where}: {variable}={value} is outside every mount")

    def selects(selector, labels):
        return all(labels.get(key) == value for key, value in selector.items())

    for service in kinds.get("Service", []):
        matched = [name for name, labels in pods.items() if selects(service["spec"]["selector"], labels)]
        if len(matched) != 1:
            fail(f"{overlay}: Service/{service['metadata']['name']} selects {matched}")
    for budget in kinds.get("PodDisruptionBudget", []):
        if not any(selects(budget["spec"]["selector"]["matchLabels"], labels) for labels in pods.values()):
            fail(f"{overlay}: PodDisruptionBudget/{budget['metadata']['name']} selects no pods")
    covered = {name for name, labels in pods.items()
               if any(selects(b["spec"]["selector"]["matchLabels"], labels) for b in kinds.get("PodDisruptionBudget", []))}
    if covered != set(pods):
        fail(f"{overlay}: no PodDisruptionBudget for {sorted(set(pods) - covered)}")

    # Network policies: whoever may reach each pod's port, from where.
    policies = kinds.get("NetworkPolicy", [])
    for name, labels in pods.items():
        component = labels.get("app.kubernetes.io/component")
        applying = [p for p in policies if selects(p["spec"]["podSelector"].get("matchLabels", {}), labels)]
        if not applying:
            fail(f"{overlay}: {name} has no NetworkPolicy (open to every pod)")
        for policy in applying:
            for rule in policy["spec"].get("ingress", []):
                ports = {port["port"] for port in rule.get("ports", [])}
                sources = rule.get("from")
                if 9090 in ports:
                    allowed = {peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
                               for peer in sources or [] if "podSelector" in peer}
                    if sources is None or allowed != callers.get(component, set()):
                        fail(f"{overlay}: gRPC into {component} from {sorted(allowed) if sources else 'anywhere'}, "
                             f"but its callers are {sorted(callers.get(component, set()))}")
                if sources is None and component not in ("gateway", "monolith"):
                    fail(f"{overlay}: {component} accepts traffic from anywhere on {sorted(ports)}")
    for name in ["gateway", "ranking"] if overlay == "microservices" else []:
        targets = [h["spec"]["scaleTargetRef"]["name"] for h in kinds.get("HorizontalPodAutoscaler", [])]
        if f"leaderboard-{name}" not in targets:
            fail(f"{overlay}: no HorizontalPodAutoscaler for {name}")
    notes.append(f"{overlay}: {len(objects)} objects ({', '.join(f'{len(v)} {k}' for k, v in sorted(kinds.items()))})")

shutil.rmtree(work)

# --- compose ------------------------------------------------------------------------------------------------------
for topology in ["monolith", "microservices"]:
    with open(os.path.join(deploy, f"compose.{topology}.yml")) as handle:
        compose = yaml.safe_load(handle)
    services = compose["services"]
    declared_secrets = set(compose.get("secrets", {}))
    for name, service in services.items():
        where = f"compose.{topology}: {name}"
        if "healthcheck" not in service:
            fail(f"{where}: no healthcheck")
        if service.get("restart") not in ("unless-stopped", "always", "on-failure"):
            fail(f"{where}: no restart policy")
        mounted = {entry if isinstance(entry, str) else entry["source"] for entry in service.get("secrets", [])}
        if not mounted <= declared_secrets:
            fail(f"{where}: mounts undeclared secrets {sorted(mounted - declared_secrets)}")
        environment = service.get("environment", {})
        for variable, value in environment.items():
            if variable.startswith("LEADERBOARD_") and variable not in known_settings:
                fail(f"{where}: {variable} is not a setting")
            if variable.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                if str(value).removeprefix("/run/secrets/") not in mounted:
                    fail(f"{where}: {variable} names a secret the service does not mount")
            lowered = variable.lower()
            if any(word in lowered for word in ("password", "master_key", "service_token", "database_url")) \
                    and not variable.endswith("_FILE"):
                fail(f"{where}: {variable} is a secret in the environment, not a file")
        image = str(service.get("image", ""))
        if "leaderboard" in image:
            target = environment.get("LEADERBOARD_TARGET", "all")
            needs = set(callers) if target == "all" else {c for c, users in callers.items() if target in users}
            depends = service.get("depends_on", {})
            for dependency in ({"postgres", "redis"} if target != "gateway" else set()) | (needs & set(services)):
                condition = depends.get(dependency, {}).get("condition") if isinstance(depends, dict) else None
                if condition != "service_healthy":
                    fail(f"{where}: does not wait for {dependency} to be healthy")
    for data in ("postgres", "redis"):
        if not any(":/" in volume for volume in services[data].get("volumes", [])):
            fail(f"compose.{topology}: {data} keeps its data in no volume")
    notes.append(f"compose.{topology}: {len(services)} services")

for note in notes:
    print(note)
for failure in failures:
    print("FAIL", failure)
sys.exit(1 if failures else 0)
