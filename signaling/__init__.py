"""Socket.IO: the real-time side of telerounds, one module per concern."""
