"""HTTP: the API server (httptools-based HTTP/1.1) and the client used for receipt callbacks."""
