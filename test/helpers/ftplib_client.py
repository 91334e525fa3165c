#!/usr/bin/env python3
"""Drives Python's ftplib.FTP_TLS against the gateway for the integration tests.

Usage: ftplib_client.py '<json>'   where the JSON holds
  host, port, user, password: where to connect;
  reuse: true (default) to resume the control TLS session on data connections, false for an
         unmodified FTP_TLS (which does not);
  timeout: socket timeout in seconds (default 20);
  source: the local address to connect from (control and data connections), optional;
  steps: a list of {"op": ..., ...}:
    {"op": "cwd", "path": p}
    {"op": "mkd", "path": p}
    {"op": "stor", "path": p, "file": local, "rest": n} storbinary from a local file (rest optional:
                                                        REST n, then the file from byte n)
    {"op": "retr", "path": p, "file": local, "rest": n} retrbinary into a local file (rest optional)
    {"op": "mlsd", "path": p}                           -> {"entries": [[name, facts], ...]}
    {"op": "nlst", "path": p}                           -> {"names": [...]}
    {"op": "size", "path": p}                           -> {"size": n}
It prints one JSON object: {"ok": bool, "results": [{"op", "reply", ...}], "error": {"type",
"message", "code"}} and stops at the first failing step. Exit status 0 whenever JSON was printed.
"""
import ftplib
import json
import socket
import ssl
import sys


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


def reply_code(error):
    text = str(error)
    return int(text[:3]) if text[:3].isdigit() else None


def last_reply(ftp):
    try:
        ftp.sock.settimeout(5)
        return ftp.getresp()
    except ftplib.Error as error:
        return str(error)
    except (OSError, EOFError) as error:
        return "(no reply: %s)" % type(error).__name__


def run(args):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    cls = ReusingFTP_TLS if args.get("reuse", True) else ftplib.FTP_TLS
    timeout = float(args.get("timeout", 20))
    source = args.get("source")
    ftp = cls(context=context, timeout=timeout, source_address=(source, 0) if source else None)
    results = []
    out = {"ok": True, "results": results}
    try:
        ftp.connect(args["host"], int(args["port"]))
        ftp.auth()
        ftp.login(args["user"], args["password"])
        ftp.prot_p()
        for step in args.get("steps", []):
            op = step["op"]
            result = {"op": op}
            if op == "cwd":
                result["reply"] = ftp.cwd(step["path"])
            elif op == "mkd":
                result["reply"] = ftp.mkd(step["path"])
            elif op == "stor":
                with open(step["file"], "rb") as f:
                    rest = step.get("rest")
                    if rest:
                        f.seek(rest)
                    result["reply"] = ftp.storbinary("STOR " + step["path"], f, rest=rest)
            elif op == "retr":
                with open(step["file"], "ab" if step.get("rest") else "wb") as f:
                    result["reply"] = ftp.retrbinary("RETR " + step["path"], f.write, rest=step.get("rest"))
            elif op == "mlsd":
                result["entries"] = [[name, facts] for name, facts in ftp.mlsd(step.get("path", ""))]
            elif op == "nlst":
                result["names"] = ftp.nlst(step.get("path", ""))
            elif op == "size":
                result["size"] = ftp.size(step["path"])
            else:
                raise ValueError("unknown op " + op)
            results.append(result)
        try:
            ftp.quit()
        except (ftplib.Error, OSError):
            ftp.close()
    except (ftplib.Error, OSError, ValueError, EOFError) as error:
        out["ok"] = False
        out["error"] = {"type": type(error).__name__, "message": str(error), "code": reply_code(error)}
        if not isinstance(error, ftplib.Error) and ftp.sock is not None:
            # The data connection broke (e.g. TLS refused): the verdict is on the control connection.
            out["error"]["lastReply"] = last_reply(ftp)
        try:
            ftp.close()
        except OSError:
            pass
    return out


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    print(json.dumps(run(json.loads(sys.argv[1]))))
