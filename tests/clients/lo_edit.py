#!/usr/bin/python3
"""Drives headless LibreOffice (python3-uno) against a WebDAV URL.

Run by tests/client_libreoffice.rs with Debian's /usr/bin/python3 (the uno
module lives in its dist-packages). Subcommands:

  make-odt OUT TEXT   writes a minimal OpenDocument text holding TEXT
  text ODT            prints the paragraphs of an .odt's content.xml
  edit --url ...      the editing scenario below; prints one JSON line

Editing scenario:
1. instance A opens the document for editing (LibreOffice LOCKs it),
   appends MARK to the text and stores it (PUT with the lock token);
2. instance B (another user profile) opens the same URL while A holds
   the lock: LibreOffice asks what to do with a locked document and the
   handler answers "open read-only";
3. B closes its copy, A closes the document (UNLOCK).

Each instance is a separate soffice process with a private user profile
and its own pipe; credentials come from the interaction handler. Every
wait is bounded; the caller also kills the whole process group.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile

DEADLINE = time.monotonic() + 75.0
ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"


def log(*a):
    print("lo_edit:", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- files


def make_odt(out, text):
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<office:document-content'
        ' xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:text="%s" office:version="1.3">'
        "<office:body><office:text><text:p>%s</text:p></office:text></office:body>"
        "</office:document-content>\n" % (ODF_TEXT, text)
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
        ' manifest:version="1.3">'
        '<manifest:file-entry manifest:full-path="/"'
        ' manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>\n"
    )
    with zipfile.ZipFile(out, "w") as z:
        # The mimetype entry comes first and is stored uncompressed.
        z.writestr(
            zipfile.ZipInfo("mimetype"),
            "application/vnd.oasis.opendocument.text",
            compress_type=zipfile.ZIP_STORED,
        )
        z.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)


def odt_text(path):
    with zipfile.ZipFile(path) as z:
        root = ET.fromstring(z.read("content.xml"))
    for p in root.iter("{%s}p" % ODF_TEXT):
        print("".join(p.itertext()))


# ---------------------------------------------------------------- UNO


def edit(a):
    import uno
    import unohelper
    from com.sun.star.beans import PropertyValue
    from com.sun.star.task import XInteractionHandler

    # pyuno of LibreOffice 7.4 on Python 3.11 cannot build UNO exception
    # objects (Python sets `args` on them, which the wrapped struct lacks),
    # so request.getRequest() would fail inside the interaction handler.
    struct_setattr = uno._uno_struct__setattr__

    def tolerant_setattr(self, name, value):
        try:
            return struct_setattr(self, name, value)
        except AttributeError:
            if name != "args":
                raise
            self.__dict__[name] = value

    uno._uno_struct__setattr__ = tolerant_setattr

    def prop(name, value):
        p = PropertyValue()
        p.Name = name
        p.Value = value
        return p

    def supports(obj, module, iface):
        try:
            t = uno.getTypeByName("com.sun.star.%s.%s" % (module, iface))
            return obj.queryInterface(t) is not None
        except Exception:
            return False

    class Handler(unohelper.Base, XInteractionHandler):
        """Supplies the credentials, opens locked documents read-only and
        aborts anything else; records the type of every request."""

        def __init__(self, seen):
            self.seen = seen

        def handle(self, request):
            try:
                self._handle(request)
            except Exception as e:
                log("interaction handler failed:", repr(e))
                raise

        def _handle(self, request):
            try:
                req = request.getRequest()
                kind = getattr(req, "typeName", None) or "unknown"
                log("interaction", kind, getattr(req, "Message", "")[:200])
            except Exception as e:
                kind = "unreadable"
                log("interaction request unreadable:", repr(e))
            self.seen.append(kind)
            conts = request.getContinuations()
            if kind.endswith("AuthenticationRequest"):
                for c in conts:
                    if supports(c, "ucb", "XInteractionSupplyAuthentication"):
                        if c.canSetUserName():
                            c.setUserName(a.user)
                        if c.canSetPassword():
                            c.setPassword(a.password)
                        c.select()
                        return
            if kind == "com.sun.star.document.LockedDocumentRequest":
                # Approve = "Open Read-Only" (Disapprove = open a copy).
                for c in conts:
                    if supports(c, "task", "XInteractionApprove"):
                        c.select()
                        return
            for c in conts:
                if supports(c, "task", "XInteractionAbort"):
                    c.select()
                    return

    class Office:
        """One soffice process with a private profile, over a pipe."""

        def __init__(self, tag):
            self.tag = tag
            self.pipe = "lo_edit_%d_%s" % (os.getpid(), tag)
            profile = os.path.join(a.workdir, "profile-" + tag)
            os.makedirs(profile, exist_ok=True)
            self.log = open(os.path.join(a.workdir, "soffice-%s.log" % tag), "wb")
            self.proc = subprocess.Popen(
                [
                    "soffice",
                    "--headless",
                    "--invisible",
                    "--nologo",
                    "--norestore",
                    "--nodefault",
                    "--nolockcheck",
                    "-env:UserInstallation=file://" + profile,
                    "--accept=pipe,name=%s;urp;StarOffice.ComponentContext" % self.pipe,
                ],
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=subprocess.STDOUT,
            )
            local = uno.getComponentContext()
            resolver = local.ServiceManager.createInstanceWithContext(
                "com.sun.star.bridge.UnoUrlResolver", local
            )
            last = None
            while time.monotonic() < DEADLINE:
                if self.proc.poll() is not None:
                    raise RuntimeError("soffice %s exited early (%s)" % (tag, self.proc.returncode))
                try:
                    ctx = resolver.resolve(
                        "uno:pipe,name=%s;urp;StarOffice.ComponentContext" % self.pipe
                    )
                    break
                except Exception as e:  # NoConnectException until it listens
                    last = e
                    time.sleep(0.2)
            else:
                raise RuntimeError("soffice %s never accepted a connection: %r" % (tag, last))
            self.desktop = ctx.ServiceManager.createInstanceWithContext(
                "com.sun.star.frame.Desktop", ctx
            )

        def load(self, handler):
            doc = self.desktop.loadComponentFromURL(
                a.url,
                "_blank",
                0,
                (
                    prop("Hidden", True),
                    prop("InteractionHandler", handler),
                    # Type detection asks this one for credentials.
                    prop("AuthenticationHandler", handler),
                ),
            )
            if doc is None:
                raise RuntimeError("instance %s could not load %s" % (self.tag, a.url))
            return doc

        def stop(self):
            try:
                self.desktop.terminate()
            except Exception:
                pass  # the bridge drops while soffice terminates
            try:
                self.proc.wait(timeout=max(1.0, min(15.0, DEADLINE - time.monotonic())))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    out = {"interactions_a": [], "interactions_b": []}
    first = Office("a")
    second = None
    try:
        doc = first.load(Handler(out["interactions_a"]))
        out["a_readonly"] = bool(doc.isReadonly())
        text = doc.getText()
        text.insertString(text.getEnd(), a.mark, False)
        doc.store()
        out["a_stored"] = True
        log("A stored")

        second = Office("b")
        doc_b = second.load(Handler(out["interactions_b"]))
        out["b_readonly"] = bool(doc_b.isReadonly())
        out["b_sees_mark"] = a.mark in doc_b.getText().getString()
        doc_b.close(True)
        log("B closed")

        if a.save_as:
            # "Save As" a new name on the server: LibreOffice creates it.
            doc.storeAsURL(a.save_as, (prop("FilterName", "writer8"),))
            out["a_saved_as"] = True
            log("A saved as", a.save_as)

        doc.close(True)
        out["a_closed"] = True
        log("A closed")
    finally:
        if second is not None:
            second.stop()
        first.stop()
    print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make-odt")
    m.add_argument("out")
    m.add_argument("text")
    t = sub.add_parser("text")
    t.add_argument("odt")
    e = sub.add_parser("edit")
    e.add_argument("--url", required=True)
    e.add_argument("--user", required=True)
    e.add_argument("--password", required=True)
    e.add_argument("--workdir", required=True)
    e.add_argument("--mark", required=True)
    e.add_argument("--save-as", default=None)
    a = ap.parse_args()
    if a.cmd == "make-odt":
        make_odt(a.out, a.text)
    elif a.cmd == "text":
        odt_text(a.odt)
    else:
        edit(a)


if __name__ == "__main__":
    main()
