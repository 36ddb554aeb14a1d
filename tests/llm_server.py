"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for failure-mode tests."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion(content=None, tool_args=None):
    message = {"role": "assistant", "content": content}
    if tool_args is not None:
        message["tool_calls"] = [{"id": "call_1", "type": "function",
                                  "function": {"name": "Task", "arguments": json.dumps(tool_args)}}]
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "scripted",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


class ScriptedServer:
    """enqueue(status, body[, delay][, trickle]) replies in order; `history` holds the request bodies.

    `trickle` sends the body one byte every `trickle` seconds: each read is quick, the whole is not.
    """

    def __init__(self):
        self.replies, self.history, self.closed = [], [], False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                server.history.append(json.loads(self.rfile.read(length)))
                status, body, delay, trickle = (server.replies.pop(0) if server.replies
                                                else (500, {"error": "no reply"}, 0, 0))
                time.sleep(delay)
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if not trickle:
                        self.wfile.write(data)
                    for byte in data if trickle else b"":
                        if server.closed:
                            break
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(trickle)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def enqueue(self, status, body, delay=0.0, trickle=0.0):
        self.replies.append((status, body, delay, trickle))
        return self

    def close(self):
        self.closed = True
        self.httpd.shutdown()
        self.httpd.server_close()
