"""Media at the server: the recorder peer of a recorded call, the layout of its frame, its file."""
