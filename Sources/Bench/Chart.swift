// An SVG chart of a run: connections held over time (left axis) and the p99 message latency per second (right axis).

/// Draws `timeline` as two lines on one time axis; a self-contained SVG 1.1 document.
public enum Chart {
    public static func svg(title: String, timeline: [TimelinePoint], width: Int = 900, height: Int = 400) -> String {
        let left = 70.0
        let right = 70.0
        let top = 40.0
        let bottom = 50.0
        let plotWidth = Double(width) - left - right
        let plotHeight = Double(height) - top - bottom
        let lastSecond = max(1, timeline.last?.second ?? 1)
        let maxConnections = niceCeiling(Double(timeline.map(\.connections).max() ?? 0))
        let maxLatencyMs = niceCeiling(Double(timeline.map(\.p99Micros).max() ?? 0) / 1000)

        func x(_ second: Int) -> Double { left + plotWidth * Double(second) / Double(lastSecond) }
        func y(_ fraction: Double) -> Double { Chart.clampY(fraction, top, plotHeight) }

        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" \
            viewBox="0 0 \(width) \(height)" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(width / 2)" y="22" text-anchor="middle" font-size="15">\(escape(title))</text>

            """
        // Axes and grid.
        svg += line(left, top, left, top + plotHeight, "#333")
        svg += line(left, top + plotHeight, left + plotWidth, top + plotHeight, "#333")
        svg += line(left + plotWidth, top, left + plotWidth, top + plotHeight, "#333")
        for step in 0...4 {
            let fraction = Double(step) / 4
            let yPos = top + plotHeight * (1 - fraction)
            if step > 0 { svg += line(left, yPos, left + plotWidth, yPos, "#ddd") }
            svg += label(
                left - 6, yPos + 4, format(maxConnections * fraction, digits: 0), anchor: "end", color: "#1f77b4")
            svg += label(
                left + plotWidth + 6, yPos + 4, format(maxLatencyMs * fraction, digits: 1), anchor: "start",
                color: "#d62728")
        }
        for step in 0...5 {
            let second = Int((Double(lastSecond) * Double(step) / 5).rounded())
            svg += label(x(second), top + plotHeight + 18, "\(second)", anchor: "middle", color: "#333")
        }
        svg += label(left + plotWidth / 2, Double(height) - 10, "seconds since start", anchor: "middle", color: "#333")
        svg += label(left - 6, top - 10, "connections", anchor: "start", color: "#1f77b4")
        svg += label(left + plotWidth + 6, top - 10, "p99 ms", anchor: "end", color: "#d62728")
        // The two series.
        if !timeline.isEmpty {
            let connections = timeline.map {
                "\(format(x($0.second), digits: 1)),\(format(y(Double($0.connections) / max(maxConnections, 1)), digits: 1))"
            }
            svg +=
                "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"\(connections.joined(separator: " "))\"/>\n"
            let latency = timeline.filter { $0.p99Micros > 0 }.map {
                "\(format(x($0.second), digits: 1)),\(format(y(Double($0.p99Micros) / 1000 / max(maxLatencyMs, 0.001)), digits: 1))"
            }
            if !latency.isEmpty {
                svg +=
                    "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" points=\"\(latency.joined(separator: " "))\"/>\n"
            }
        }
        svg += "</svg>\n"
        return svg
    }

    /// The y coordinate of a value given as a fraction of the axis' maximum, clamped to the plot.
    static func clampY(_ fraction: Double, _ top: Double, _ plotHeight: Double) -> Double {
        top + plotHeight * (1 - min(1, max(0, fraction)))
    }

    /// 1, 2 or 5 times a power of ten, at least `value` (axes end on a round number).
    static func niceCeiling(_ value: Double) -> Double {
        guard value > 0 else { return 1 }
        var power = 1.0
        while power * 10 <= value { power *= 10 }
        while power > value { power /= 10 }
        for factor in [1.0, 2.0, 5.0, 10.0] where factor * power >= value { return factor * power }
        return 10 * power
    }

    private static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, _ color: String) -> String {
        "<line x1=\"\(format(x1, digits: 1))\" y1=\"\(format(y1, digits: 1))\" x2=\"\(format(x2, digits: 1))\" "
            + "y2=\"\(format(y2, digits: 1))\" stroke=\"\(color)\"/>\n"
    }

    private static func label(_ x: Double, _ y: Double, _ text: String, anchor: String, color: String) -> String {
        "<text x=\"\(format(x, digits: 1))\" y=\"\(format(y, digits: 1))\" text-anchor=\"\(anchor)\" "
            + "fill=\"\(color)\">\(escape(text))</text>\n"
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}
