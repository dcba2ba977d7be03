# Test upstream for the gateway's end-to-end tests: answers with what it received, counts requests.
#
# usage: upstream.py HOST PORT
#   GET  /__count            how many requests arrived complete (head and whole body); the /__ paths are not counted
#   GET  /__paths            every request-target a head arrived for, one per line, oldest first
#   any other GET            200 JSON {"method","path","headers":[[name,value],...],"server":"HOST:PORT"}
#     ?sleep=MS              ... after sleeping MS milliseconds
#     ?chunked=1             ... a chunked response whose body is 0123456789 repeated, in pieces of 1 to 65536 bytes
#     ?stall=MS              ... a 100-byte body: 10 bytes, then MS milliseconds of silence, then the other 90
#     ?truncate=1            ... a 100-byte body declared, 10 bytes sent, then the connection closed
#   POST                     the request body echoed back (Content-Length or chunked request), Content-Length response
import http.server
import json
import sys
import threading
import time
import urllib.parse

count = 0
paths = []
lock = threading.Lock()


def chunk_pieces():
    # Fixed, varied piece sizes so a relay that merges or splits chunks still has to keep every byte.
    sizes = [1, 7, 100, 4096, 9000, 3, 65536, 2]
    pattern = b"0123456789"
    offset = 0
    for size in sizes:
        piece = bytes(pattern[(offset + i) % 10] for i in range(size))
        offset += size
        yield piece


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def count(self):
        global count
        with lock:
            count += 1

    def saw(self):
        with lock:
            paths.append(self.path)

    def send_body(self, status, body, content_type="application/octet-stream"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # Head and body in one write, as end_headers() + write() would send them in two: on a kept-alive
        # connection the second one waits for the delayed ACK of the first (Nagle), 40 ms per request.
        self._headers_buffer.append(b"\r\n")
        self.wfile.write(b"".join(self._headers_buffer) + body)
        self._headers_buffer = []

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__count":
            with lock:
                value = count
            self.send_body(200, str(value).encode(), "text/plain")
            return
        if url.path == "/__paths":
            with lock:
                text = "".join(path + "\n" for path in paths)
            self.send_body(200, text.encode(), "text/plain")
            return
        self.saw()
        self.count()
        query = urllib.parse.parse_qs(url.query)
        if "sleep" in query:
            time.sleep(int(query["sleep"][0]) / 1000)
        if "stall" in query or "truncate" in query:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "100")
            self._headers_buffer.append(b"\r\n")
            self.wfile.write(b"".join(self._headers_buffer) + b"a" * 10)
            self._headers_buffer = []
            self.wfile.flush()
            if "truncate" in query:
                self.close_connection = True
                return
            time.sleep(int(query["stall"][0]) / 1000)
            self.wfile.write(b"b" * 90)
            return
        if "chunked" in query:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in chunk_pieces():
                self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        body = {
            "method": self.command,
            "path": self.path,
            "headers": [[name, value] for name, value in self.headers.items()],
            "server": "%s:%d" % self.server.server_address[:2],
        }
        self.send_body(200, json.dumps(body).encode(), "application/json")

    def do_POST(self):
        self.saw()
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
        else:
            length = int(self.headers.get("Content-Length", "0"))
            data = self.rfile.read(length)
            if len(data) != length:
                return
        self.count()
        self.send_body(200, bytes(data))

    def log_message(self, *arguments):
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True


server = Server((sys.argv[1], int(sys.argv[2])), Handler)
print("listening", flush=True)
server.serve_forever()
