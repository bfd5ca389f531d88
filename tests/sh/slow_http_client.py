"""A careless or hostile HTTP client, for kite top --metrics's tests.

  slow_http_client.py PORT dribble   send a request one byte every 0.5 s
  slow_http_client.py PORT idle      connect and send nothing
  slow_http_client.py PORT noread    ask for /metrics and never read

Each prints "dropped after N.N s" once the server closes on it (the
others hold on for 60 s at most)."""
import os
import socket
import sys
import time

port, how = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
s.connect(("127.0.0.1", port))
t0 = time.monotonic()
s.settimeout(0.5)
request = b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n"
if how == "noread":
    s.sendall(request)
    time.sleep(60)
    sys.exit(0)
i = 0
while time.monotonic() - t0 < 60:
    if how == "dribble" and i < len(request) - 1:  # never the last byte
        try:
            s.send(request[i:i + 1])
        except OSError:
            break
        i += 1
    try:
        if s.recv(1) == b"":
            break
    except socket.timeout:
        continue
    except OSError:
        break
# One write(2) of the whole line: several clients append to one log, and
# print() may write the text and its newline separately (lines came out
# merged: "dropped after 2.0 sdropped after 2.0 s").
os.write(1, ("dropped after %.1f s\n" % (time.monotonic() - t0)).encode())
