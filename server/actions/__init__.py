"""The use cases: what a request, an event or a loop does, over policy, records and live state."""
