"""Live collaboration: websocket channels, presence and the broker between processes."""
