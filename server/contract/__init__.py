"""The vocabulary shared by every layer and by the clients: the one error type, the payload models."""
