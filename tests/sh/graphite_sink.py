# A Graphite plaintext listener for the statsd shell tests: listens on a
# free loopback port, writes the port to FILE.port and appends everything
# it receives, from any number of connections, to FILE.
import socket, sys, threading
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
open(sys.argv[1] + ".port", "w").write(str(srv.getsockname()[1]))
out = open(sys.argv[1], "ab", buffering=0)
lock = threading.Lock()
def serve(c):
    while True:
        b = c.recv(65536)
        if not b:
            return
        with lock:
            out.write(b)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
