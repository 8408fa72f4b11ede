/// How long data that only serves a while is kept (docs/OPERATIONS.md, "Retention"). Each window is a setting; 0
/// keeps that data for ever. The audit log is never pruned by the services: it is append-only by design (a trigger
/// refuses deletes), so trimming it is an operator's act on a backed-up database.
public enum RetentionSettings {
    public static let interval = Setting(
        "retention-interval-minutes", default: "60", help: "Minutes between retention runs (1 to 1440).")
    public static let abandonedSessionHours = Setting(
        "retention-abandoned-sessions-hours", default: "24",
        help: "Hours after expiry that a benchmark session never submitted is deleted, with its metric samples.")
    public static let unrankedSampleDays = Setting(
        "retention-metric-samples-days", default: "30",
        help: "Days the metric samples of a submitted session that did not become a published record are kept "
            + "(rejected, or held and then rejected).")
    public static let recordSampleDays = Setting(
        "retention-record-samples-days", default: "0",
        help: "Days the metric samples behind a published record (its charts) are kept; 0: as long as the record.")
    public static let boardEventHours = Setting(
        "retention-board-events-hours", default: "24",
        help: "Hours board events stay replayable for WebSocket resumes; the newest 10000 of each board always stay.")
    public static let notificationDays = Setting(
        "retention-notifications-days", default: "90", help: "Days a notification is kept, read or not.")
    public static let resolvedFlagDays = Setting(
        "retention-resolved-flags-days", default: "365", help: "Days a resolved flag is kept.")

    public static let ranking = [
        interval, abandonedSessionHours, unrankedSampleDays, recordSampleDays, boardEventHours,
    ]
    public static let interaction = [interval, notificationDays, resolvedFlagDays]
}

/// One retention window read from its setting: nil keeps the data for ever.
public struct RetentionWindow: Sendable, Equatable {
    public let microseconds: Int64

    public init(hours: Int) { microseconds = Int64(hours) * 3_600_000_000 }
    public init(days: Int) { self.init(hours: days * 24) }

    /// The time before which data falls out of the window, measured from `now` (microseconds since the epoch).
    public func cutoff(now: Int64) -> Int64 { now - microseconds }
}

extension ConfigurationReader {
    /// A retention window in hours or days (0 to ten years); nil when 0 (keep for ever).
    public mutating func retention(_ setting: Setting, days: Bool) -> RetentionWindow? {
        let value = integer(setting, in: 0...(days ? 3650 : 87_600))
        guard value > 0 else { return nil }
        return days ? RetentionWindow(days: value) : RetentionWindow(hours: value)
    }

    /// How often retention runs.
    public mutating func retentionInterval() -> Duration {
        .seconds(60 * integer(RetentionSettings.interval, in: 1...1440))
    }
}
