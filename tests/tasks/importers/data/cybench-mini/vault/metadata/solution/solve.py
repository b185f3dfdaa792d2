import socket

with open("hint.txt") as f:
    password = f.read().split(":", 1)[1].strip()
with socket.create_connection(("vault", 1337), timeout=10) as s:
    s.recv(100)
    s.sendall(password.encode() + b"\n")
    data = b""
    while chunk := s.recv(100):
        data += chunk
print(data.decode())
