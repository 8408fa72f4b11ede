import Foundation

/// Server-rendered SVG charts for the pages: no script, no external resource, every label escaped. Styled by
/// classes in site.css (the Content-Security-Policy allows no inline style).
enum SiteCharts {
    struct Bar {
        var label: String
        var value: Double
        /// What the bar says beside it (e.g. "352.6 tok/s").
        var text: String
    }

    /// Horizontal bars, one per item, scaled to the largest value; `title` names the chart for screen readers.
    static func bars(_ bars: [Bar], title: String) -> String {
        guard !bars.isEmpty else { return "" }
        let rowHeight = 28
        let labelWidth = 220
        let plotWidth = 360
        let height = rowHeight * bars.count + 8
        let largest = max(bars.map { $0.value.isFinite ? $0.value : 0 }.max() ?? 0, 1e-12)
        var svg = opening(title, width: labelWidth + plotWidth + 110, height: height)
        for (index, bar) in bars.enumerated() {
            let y = index * rowHeight + 4
            let value = bar.value.isFinite ? max(0, bar.value) : 0
            let width = Int((value / largest * Double(plotWidth)).rounded())
            svg +=
                "<text class=\"label\" x=\"\(labelWidth - 8)\" y=\"\(y + 18)\" text-anchor=\"end\">\(escape(clipped(bar.label)))</text>"
                + "<rect class=\"bar\" x=\"\(labelWidth)\" y=\"\(y + 4)\" width=\"\(max(1, width))\" height=\"\(rowHeight - 10)\"></rect>"
                + "<text class=\"value\" x=\"\(labelWidth + max(1, width) + 6)\" y=\"\(y + 18)\">\(escape(bar.text))</text>"
        }
        return svg + "</svg><figcaption>\(escape(title))</figcaption></figure>"
    }

    /// Ranges (p25–p75 with the median marked, whiskers to min and max) per group, on one scale.
    struct Range {
        var label: String
        var min: Double
        var p25: Double
        var median: Double
        var p75: Double
        var max: Double
    }

    static func ranges(_ ranges: [Range], title: String) -> String {
        guard !ranges.isEmpty else { return "" }
        let rowHeight = 28
        let labelWidth = 220
        let plotWidth = 420
        let height = rowHeight * ranges.count + 8
        let largest = Swift.max(ranges.map { $0.max.isFinite ? $0.max : 0 }.max() ?? 0, 1e-12)
        func x(_ value: Double) -> Int {
            labelWidth + Int(((value.isFinite ? Swift.max(0, value) : 0) / largest * Double(plotWidth)).rounded())
        }
        var svg = opening(title, width: labelWidth + plotWidth + 20, height: height)
        for (index, range) in ranges.enumerated() {
            let y = index * rowHeight + 4
            let middle = y + rowHeight / 2
            svg +=
                "<text class=\"label\" x=\"\(labelWidth - 8)\" y=\"\(y + 18)\" text-anchor=\"end\">\(escape(clipped(range.label)))</text>"
                + "<line class=\"whisker\" x1=\"\(x(range.min))\" y1=\"\(middle)\" x2=\"\(x(range.max))\" y2=\"\(middle)\"></line>"
                + "<rect class=\"bar\" x=\"\(x(range.p25))\" y=\"\(y + 4)\" width=\"\(Swift.max(1, x(range.p75) - x(range.p25)))\" height=\"\(rowHeight - 10)\"></rect>"
                + "<line class=\"median\" x1=\"\(x(range.median))\" y1=\"\(y + 2)\" x2=\"\(x(range.median))\" y2=\"\(y + rowHeight - 4)\"></line>"
        }
        return svg + "</svg><figcaption>\(escape(title))</figcaption></figure>"
    }

    /// A line over time: `points` are (seconds from the start, value), drawn with their extremes labelled.
    static func line(_ points: [(x: Double, y: Double)], title: String, unit: String) -> String {
        let finite = points.filter { $0.x.isFinite && $0.y.isFinite }
        guard finite.count >= 2 else { return "" }
        let (width, height, left, bottom) = (600.0, 200.0, 60.0, 24.0)
        let maxX = Swift.max(finite.map(\.x).max() ?? 1, 1e-9)
        let maxY = Swift.max(finite.map(\.y).max() ?? 1, 1e-9)
        func x(_ value: Double) -> String { String(format: "%.1f", left + value / maxX * (width - left - 10)) }
        func y(_ value: Double) -> String {
            String(format: "%.1f", (height - bottom) - value / maxY * (height - bottom - 10))
        }
        let path = finite.map { "\(x($0.x)),\(y($0.y))" }.joined(separator: " ")
        return
            "<figure class=\"chart\"><svg role=\"img\" aria-labelledby=\"\(id(title))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"100%\">"
            + "<title id=\"\(id(title))\">\(escape(title))</title>"
            + "<line class=\"whisker\" x1=\"\(Int(left))\" y1=\"\(Int(height - bottom))\" x2=\"\(Int(width - 10))\" y2=\"\(Int(height - bottom))\"></line>"
            + "<line class=\"whisker\" x1=\"\(Int(left))\" y1=\"10\" x2=\"\(Int(left))\" y2=\"\(Int(height - bottom))\"></line>"
            + "<text class=\"label\" x=\"\(Int(left) - 6)\" y=\"16\" text-anchor=\"end\">\(escape(String(format: "%.0f", maxY)))</text>"
            + "<text class=\"label\" x=\"\(Int(left) - 6)\" y=\"\(Int(height - bottom))\" text-anchor=\"end\">0</text>"
            + "<text class=\"label\" x=\"\(Int(width - 10))\" y=\"\(Int(height) - 6)\" text-anchor=\"end\">\(escape(String(format: "%.0f s", maxX)))</text>"
            + "<polyline class=\"series\" points=\"\(path)\"></polyline>"
            + "</svg><figcaption>\(escape(title)) (\(escape(unit)))</figcaption></figure>"
    }

    /// A chart's figure and SVG element, named by its title for screen readers.
    static func opening(_ title: String, width: Int, height: Int) -> String {
        "<figure class=\"chart\"><svg role=\"img\" aria-labelledby=\"\(id(title))\" viewBox=\"0 0 \(width) \(height)\" width=\"100%\">"
            + "<title id=\"\(id(title))\">\(escape(title))</title>"
    }

    /// At most 32 characters, without bidirectional controls (an SVG label has no `<bdi>` to isolate them).
    static func clipped(_ text: String) -> String {
        let plain = String(
            String.UnicodeScalarView(
                text.unicodeScalars.filter {
                    !(0x202A...0x202E).contains($0.value) && !(0x2066...0x2069).contains($0.value)
                        && !(0x200E...0x200F).contains($0.value)
                }))
        return plain.count > 32 ? String(plain.prefix(31)) + "…" : plain
    }

    /// An element id from a title (letters and digits only).
    static func id(_ title: String) -> String {
        "chart-"
            + String(
                title.lowercased().unicodeScalars.filter { $0.isASCII && CharacterSet.alphanumerics.contains($0) }
                    .prefix(40).map(Character.init))
    }

    static func escape(_ text: String) -> String { VerifyPages.escape(text) }
}
