import ServiceKit
import Testing

@Suite("Random sources")
struct RandomSourceTests {
    @Test(
        "the system source gives exactly the bytes asked for, every byte of them random",
        arguments: [0, 1, 7, 8, 9, 33])
    func systemBytes(count: Int) {
        let draws = (0..<200).map { _ in SystemRandomSource().bytes(count) }
        #expect(draws.allSatisfy { $0.count == count })
        // Each position takes many values over 200 draws (a byte left zero or fixed would not).
        for position in 0..<count {
            #expect(Set(draws.map { $0[position] }).count > 100, "position \(position)")
        }
        if count >= 8 { #expect(Set(draws).count == draws.count) }
    }
}
