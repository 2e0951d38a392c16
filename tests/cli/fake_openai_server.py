"""A stand-in OpenAI-compatible server for the command-line tests: answers /health,
/v1/models and /v1/chat/completions with canned text ("answer N"), and dies (exits without
answering) at request number --die-after, like a server that crashes mid-run; or fails
(--status, --fail-first) or stalls (--slow-first) on purpose. Loopback only.
Prints "listening on http://127.0.0.1:PORT" to stderr once it accepts connections.
"""
import argparse
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--die-after", type=int, default=0, help="exit at this chat request (0: never)")
parser.add_argument("--status", type=int, default=200, help="answer chat requests with this HTTP status")
parser.add_argument("--fail-first", type=int, default=0, help="answer the first N chat requests 503")
parser.add_argument("--slow-first", type=int, default=0, help="stall the first N chat requests")
parser.add_argument("--stall", type=float, default=5.0, help="seconds a stalled request waits")
args = parser.parse_args()
count = 0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, {})
        elif self.path == "/v1/models":
            self.reply(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        else:
            self.reply(404, {"error": {"message": "no route " + self.path}})

    def do_POST(self):
        global count
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":
            self.reply(404, {"error": {"message": "no route " + self.path}})
            return
        count += 1
        if args.die_after and count >= args.die_after:
            os._exit(3)
        if count <= args.fail_first:
            self.reply(503, {"error": {"message": "overloaded, try again"}})
            return
        if count <= args.slow_first:
            time.sleep(args.stall)
        if args.status != 200:
            self.reply(args.status, {"error": {"message": "fake server refuses: bad model settings", "type": "invalid_request_error"}})
            return
        text = "answer %d to: %s" % (count, body["messages"][-1]["content"][:20])
        self.reply(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body.get("model", ""),
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("listening on http://127.0.0.1:%d" % server.server_address[1], file=sys.stderr, flush=True)
server.serve_forever()
