// Loop-owned lists of live objects (connections, exchanges, tunnels, sessions): O(1) removal by index.

/// Something kept in a loop-owned array that knows its index there (`slot`, -1 when in none).
public protocol Slotted: AnyObject {
    var slot: Int { get set }
}

// `@inlinable`: specialized for each caller's element type (unspecialized, every add and removal looked up witness
// tables and generic metadata, once per upgrade each way).
extension Array where Element: Slotted {
    /// Appends `item` and records its index in it.
    @inlinable
    public mutating func appendSlotted(_ item: Element) {
        item.slot = count
        append(item)
    }

    /// Removes `item` in O(1) by moving the last element into its slot; false when it was not here. Order is not
    /// kept: these lists are walked whole (sweeps, drains), never in order.
    @inlinable @discardableResult
    public mutating func removeSlotted(_ item: Element) -> Bool {
        let slot = item.slot
        guard slot >= 0, slot < count, self[slot] === item else { return false }
        let last = removeLast()
        if last !== item {
            self[slot] = last
            last.slot = slot
        }
        item.slot = -1
        return true
    }
}
