#!/usr/bin/env python3
"""expo serve under load and abuse, as a new user's clients would treat it: 16 clients at once,
clients that trickle their headers, clients that leave mid-answer, a full queue, large bodies
with and without a Content-Type, the official OpenAI Node client (tests/serve/
openai_client_test.mjs), and GET /health answering promptly throughout.

Usage: python3 tests/serve/serve_load_test.py path/to/expo
Needs node and the npm package `openai` (scripts/install-npm-deps.sh) for the client part;
without them that part is skipped (a failure in CI, CI=true).
"""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

EXPO = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/expo")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OPENAI_PACKAGE = os.path.join(ROOT, "tests", "golden", "text", "node_modules", "openai")

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {name}" + (f"\n  | {detail}" if detail else ""), flush=True)


class Server:
    def __init__(self, work, name, *args):
        self.log_path = os.path.join(work, name + ".log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([EXPO, "serve", "--port", "0", "--threads", "2", *args],
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        self.port = None
        while time.time() < deadline and self.port is None:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", open(self.log_path).read())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.05)
        if self.port is None:
            raise RuntimeError("expo serve did not start:\n" + open(self.log_path).read())

    def request(self, method, path, body=None, headers=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def chat(self, content, **fields):
        body = {"messages": [{"role": "user", "content": content}], **fields}
        status, headers, data = self.request("POST", "/v1/chat/completions", json.dumps(body),
                                             {"Content-Type": "application/json"})
        return status, headers, json.loads(data) if data else None

    def metric(self, name):
        _, _, data = self.request("GET", "/metrics")
        m = re.search(r"^" + re.escape(name) + r"\{[^}]*\} (\S+)$", data.decode(), re.M)
        return float(m.group(1)) if m else None

    def rss_mib(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class HealthWatch:
    """Polls GET /health every 50 ms on fresh connections; records the slowest answer."""

    def __init__(self, server):
        self.server, self.worst, self.failures, self.count = server, 0.0, 0, 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_flag.is_set():
            start = time.time()
            try:
                status, _, _ = self.server.request("GET", "/health", timeout=10)
                if status != 200:
                    self.failures += 1
            except Exception:
                self.failures += 1
            self.worst = max(self.worst, time.time() - start)
            self.count += 1
            time.sleep(0.05)

    def finish(self):
        self.stop_flag.set()
        self.thread.join()
        return self.worst


def run(work):
    subprocess.run([EXPO, "demo", "--planted", "--dir", os.path.join(work, "demo"), "--alphas", "0",
                    "--prompts", "1", "--max-new-tokens", "1"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chat_dir = os.path.join(work, "demo", "sft")
    reward_dir = os.path.join(work, "demo", "reward")

    s = Server(work, "chat", "--model", chat_dir, "--header-timeout", "2", "--body-timeout", "3",
               "--max-body-size", "32MiB")
    try:
        watch = HealthWatch(s)

        # 16 clients at once: every answer equals the same request's answer alone.
        def body(i):
            return dict(max_tokens=12, temperature=1.0, seed=1000 + i)
        alone = [s.chat(f"question {i}", **body(i))[2]["choices"][0]["message"]["content"]
                 for i in range(16)]
        results = [None] * 16

        def client(i):
            results[i] = s.chat(f"question {i}", **body(i))
        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check("16 concurrent clients all answered 200", all(r and r[0] == 200 for r in results),
              str([r and r[0] for r in results]))
        check("16 concurrent answers equal the answers alone",
              [r[2]["choices"][0]["message"]["content"] for r in results] == alone)

        # Clients that trickle a header line every 0.5 s: cut at --header-timeout (2 s), and
        # meanwhile others are served at once.
        trickled = []

        def trickle():
            sock = socket.create_connection(("127.0.0.1", s.port))
            sock.settimeout(10)
            start = time.time()
            try:
                sock.sendall(b"GET /health HTTP/1.1\r\n")
                for k in range(20):
                    time.sleep(0.5)
                    sock.sendall(f"X-Slow-{k}: 1\r\n".encode())
            except OSError:
                pass
            try:
                answer = sock.recv(4096)
            except OSError:
                answer = b""
            trickled.append((time.time() - start, answer))
            sock.close()
        slow = [threading.Thread(target=trickle) for _ in range(12)]
        for t in slow:
            t.start()
        time.sleep(0.3)
        start = time.time()
        status, _, _ = s.chat("while others trickle", max_tokens=4, temperature=0)
        check("a chat request is answered while 12 clients trickle headers",
              status == 200 and time.time() - start < 5, f"status {status}, {time.time() - start:.1f} s")
        for t in slow:
            t.join()
        check("trickling clients are cut at the header timeout",
              len(trickled) == 12 and all(d < 6 for d, _ in trickled),
              str([round(d, 1) for d, _ in trickled]))
        check("a trickling client is told 408",
              any(a.startswith(b"HTTP/1.1 408") for _, a in trickled), str(trickled[:1]))

        # 50 idle connections hold nothing.
        idle = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(50)]
        start = time.time()
        status, _, _ = s.request("GET", "/v1/models")
        check("GET /v1/models with 50 idle connections open", status == 200 and time.time() - start < 2)
        for sock in idle:
            sock.close()

        # A client that leaves mid-answer cancels its generation at the next step.
        sock = socket.create_connection(("127.0.0.1", s.port))
        long_body = json.dumps({"messages": [{"role": "user", "content": "go on"}],
                                "max_tokens": 100000, "ignore_eos": True, "temperature": 0})
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(long_body)}\r\n\r\n{long_body}".encode())
        deadline = time.time() + 10
        while time.time() < deadline and (s.metric("expo_num_requests_running") or 0) < 1:
            time.sleep(0.05)
        check("the long request runs", (s.metric("expo_num_requests_running") or 0) >= 1)
        sock.close()
        deadline = time.time() + 5
        while time.time() < deadline and (s.metric("expo_num_requests_running") or 0) > 0:
            time.sleep(0.05)
        check("the generation of a client that left is cancelled",
              s.metric("expo_num_requests_running") == 0)
        start = time.time()
        status, _, _ = s.chat("next", max_tokens=4, temperature=0)
        check("the next client is answered at once", status == 200 and time.time() - start < 3)

        # The same with a streamed answer.
        sock = socket.create_connection(("127.0.0.1", s.port))
        stream_body = json.dumps({"messages": [{"role": "user", "content": "go on"}], "stream": True,
                                  "max_tokens": 100000, "ignore_eos": True, "temperature": 0})
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     f"Content-Length: {len(stream_body)}\r\n\r\n{stream_body}".encode())
        first = sock.recv(4096)
        check("a stream starts", b"text/event-stream" in first, first[:200].decode("latin1"))
        sock.close()
        deadline = time.time() + 5
        while time.time() < deadline and (s.metric("expo_num_requests_running") or 0) > 0:
            time.sleep(0.05)
        check("a stream whose client left is cancelled", s.metric("expo_num_requests_running") == 0)

        # Bodies: the limit applies whatever the Content-Type; below it, no Content-Type is
        # needed (curl -d sends application/x-www-form-urlencoded).
        filler = "x" * 20000
        form_body = json.dumps({"messages": [{"role": "user", "content": filler}], "max_tokens": 1})
        status, _, data = s.request("POST", "/v1/chat/completions", form_body,
                                    {"Content-Type": "application/x-www-form-urlencoded"})
        check("a 20 KB form-encoded JSON body is read as JSON", status in (200, 400) and b"413" not in data
              and status != 413, f"{status} {data[:200]!r}")
        big = b"{" + b" " * (33 << 20) + b"}"
        status, _, data = s.request("POST", "/v1/chat/completions", big, {})
        check("a body over --max-body-size is 413 naming the limit",
              status == 413 and b"32" in data, f"{status} {data[:200]!r}")
        base = s.rss_mib()
        many = json.dumps({"messages": [{"role": "user", "content": "y" * (30 << 20)}]})
        statuses = []

        def big_client():
            statuses.append(s.request("POST", "/v1/chat/completions", many,
                                      {"Content-Type": "application/json"})[0])
        threads = [threading.Thread(target=big_client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check("four 30 MB prompts are refused as too long", statuses == [400] * 4, str(statuses))
        time.sleep(0.5)
        after = s.rss_mib()
        check("memory of large requests is returned", after < base + 150,
              f"RSS {base:.0f} MiB before, {after:.0f} MiB after")
        worst = watch.finish()
        check("GET /health answered within 1 s throughout", worst < 1.0 and watch.failures == 0,
              f"slowest {worst:.2f} s, {watch.failures} failures of {watch.count}")

        # The official OpenAI Node client.
        node = shutil.which("node")
        if node and os.path.isdir(OPENAI_PACKAGE):
            r = subprocess.run([node, os.path.join(HERE, "openai_client_test.mjs"),
                                f"http://127.0.0.1:{s.port}", "sft", OPENAI_PACKAGE],
                               capture_output=True, text=True, timeout=300)
            check("the OpenAI Node client test", r.returncode == 0, (r.stdout + r.stderr)[-3000:])
            print(r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "(no output)")
        elif os.environ.get("CI") == "true":
            check("skipped in CI: node or the npm package openai is missing", False)
        else:
            print("skipped: the OpenAI Node client test (node or the npm package openai missing)")
    finally:
        s.stop()

    # A full queue: --batch-size 1 --max-queue 1, three long requests at once.
    q = Server(work, "queue", "--model", chat_dir, "--batch-size", "1", "--max-queue", "1")
    try:
        answers = []

        def long_client():
            answers.append(q.chat("long", max_tokens=1500, ignore_eos=True, temperature=0))
        threads = [threading.Thread(target=long_client) for _ in range(3)]
        for t in threads:
            t.start()
            time.sleep(0.1)
        for t in threads:
            t.join()
        statuses = sorted(a[0] for a in answers)
        busy = [a for a in answers if a[0] == 503]
        check("a full queue answers 503 with Retry-After",
              statuses == [200, 200, 503] and busy and busy[0][1].get("Retry-After") == "1",
              str([(a[0], a[1].get("Retry-After")) for a in answers]))
    finally:
        q.stop()

    # Reward model: concurrent /pooling requests give the scores they give alone.
    r = Server(work, "reward", "--model", reward_dir)
    try:
        texts = [f"<|im_start|>user\nq{i}<|im_end|>\n<|im_start|>assistant\na{i}<|im_end|>\n"
                 for i in range(12)]

        def pool(text):
            status, _, data = r.request("POST", "/pooling", json.dumps({"input": text}))
            return json.loads(data)["data"][0]["data"][0] if status == 200 else None
        alone = [pool(t) for t in texts]
        together = [None] * len(texts)

        def client(i):
            together[i] = pool(texts[i])
        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(texts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check("concurrent /pooling requests score as they do alone",
              None not in alone and together == alone, f"{alone} vs {together}")
        status, _, data = r.request("POST", "/pooling", "input=" + "z" * 10000,
                                    {"Content-Type": "application/x-www-form-urlencoded"})
        check("a 10 KB form body is a JSON error, not 413", status == 400 and b"JSON" in data,
              f"{status} {data[:200]!r}")
    finally:
        r.stop()


def main():
    work = tempfile.mkdtemp()
    try:
        run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


main()
