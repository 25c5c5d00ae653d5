"""Live captions over the network: `speech-s2s serve`'s WebSocket server and the page it serves."""
