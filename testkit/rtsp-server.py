#!/usr/bin/python3
"""Looping RTSP camera for integration tests (GStreamer RTSP server through Python GObject).

Run with /usr/bin/python3 (needs python3-gi + gir1.2-gst-rtsp-server-1.0). It owns an ffmpeg feeder that
plays CLIP in a loop, in real time, as MPEG-TS over UDP to 127.0.0.1:UDPPORT; the RTSP media (shared by
all clients) relays it: udpsrc ! tsdemux ignore-pcr=true ! h264parse ! rtph264pay. The clip must be H.264.

Prints to stdout, one line each: "FEEDER <pid>" once the feeder runs, then "READY <port>" once the RTSP
server listens on 127.0.0.1:<port>. Exits on SIGTERM/SIGINT (killing the feeder) or when the feeder dies. The feeder is started with
PR_SET_PDEATHSIG so it dies with this process even on SIGKILL.

The password is read from the environment variable RTSP_TEST_PASSWORD (kept off the command line).
RTSP_TEST_LAUNCH overrides the media's launch line (for experiments; {port} and {buf} are substituted).
"""
import argparse
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--clip", required=True)
    p.add_argument("--port", type=int, required=True, help="RTSP port on 127.0.0.1")
    p.add_argument("--udp-port", type=int, required=True, help="loopback UDP port between feeder and server")
    p.add_argument("--udp-buffer", type=int, default=0, help="udpsrc buffer-size in bytes (0: OS default)")
    p.add_argument("--mount", default="/cam1")
    p.add_argument("--auth", choices=["none", "basic", "digest"], default="none")
    p.add_argument("--user", default="")
    p.add_argument("--password", default="", help="prefer the RTSP_TEST_PASSWORD environment variable")
    p.add_argument("--tag", default="rtsp-test", help="marker put in the feeder's command line (find it in /proc)")
    p.add_argument("--ffmpeg", default="ffmpeg")
    return p.parse_args()


def die_with_parent():
    # Runs in the forked child before exec: SIGKILL it when this Python process dies.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may already have died between fork and prctl.
    if os.getppid() == 1:
        os._exit(1)


def start_feeder(args):
    cmd = [
        args.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        "-re", "-stream_loop", "-1", "-i", args.clip,
        "-map", "0:v:0", "-c", "copy",
        "-metadata", "service_name=" + args.tag,
        "-f", "mpegts", "udp://127.0.0.1:%d?pkt_size=1316" % args.udp_port,
    ]
    # Started before Gst.init() / any thread exists, so preexec_fn is safe here.
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)


def main():
    args = parse_args()
    password = os.environ.get("RTSP_TEST_PASSWORD", args.password)

    feeder = start_feeder(args)

    def kill_feeder():
        if feeder.poll() is None:
            try:
                feeder.send_signal(signal.SIGCONT)  # a frozen (SIGSTOPped) feeder would not act on SIGTERM
                feeder.kill()
                feeder.wait(timeout=5)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass

    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtsp", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GLib, Gst, GstRtsp, GstRtspServer

        Gst.init(None)
        loop = GLib.MainLoop()

        server = GstRtspServer.RTSPServer()
        server.set_address("127.0.0.1")
        server.set_service(str(args.port))

        factory = GstRtspServer.RTSPMediaFactory()
        # ignore-pcr=true: without it the timestamps break and only a fraction of the frames arrive.
        # latency=0: tsdemux otherwise adds 700 ms before the first packet reaches a client.
        launch = os.environ.get("RTSP_TEST_LAUNCH") or (
            "( udpsrc address=127.0.0.1 port={port} buffer-size={buf} "
            "caps=\"video/mpegts,systemstream=(boolean)true,packetsize=(int)188\" "
            "! tsdemux ignore-pcr=true latency=0 ! h264parse config-interval=-1 "
            "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )
        factory.set_launch(launch.format(port=args.udp_port, buf=args.udp_buffer))
        factory.set_shared(True)

        if args.auth != "none":
            auth = GstRtspServer.RTSPAuth()
            token = GstRtspServer.RTSPToken()
            token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
            if args.auth == "digest":
                auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
                auth.add_digest(args.user, password, token)
            else:
                auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
                auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, password), token)
            server.set_auth(auth)
            role = Gst.Structure.new_from_string(
                "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )
            factory.add_role_from_structure(role)

        server.get_mount_points().add_factory(args.mount, factory)

        if server.attach(None) == 0:
            print("ERROR cannot listen on 127.0.0.1:%d" % args.port, file=sys.stderr, flush=True)
            kill_feeder()
            return 2

        def quit_loop(*_a):
            loop.quit()
            return GLib.SOURCE_REMOVE

        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, quit_loop)
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, quit_loop)

        # The feeder dying means the camera is gone: exit too, so tests see a clear failure.
        def check_feeder():
            if feeder.poll() is not None:
                print("ERROR feeder exited with %s" % feeder.returncode, file=sys.stderr, flush=True)
                loop.quit()
                return GLib.SOURCE_REMOVE
            return GLib.SOURCE_CONTINUE

        GLib.timeout_add(200, check_feeder)

        print("FEEDER %d" % feeder.pid, flush=True)
        print("READY %d" % server.get_bound_port(), flush=True)
        loop.run()
    finally:
        kill_feeder()
    return 0


if __name__ == "__main__":
    sys.exit(main())
