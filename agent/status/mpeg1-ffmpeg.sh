#!/bin/sh
# ffmpeg for the status page's MPEG-1 preview (agent/status/mpeg1.ts). node-rtsp-stream's Mpeg1Muxer spawns
# "<ffmpegPath> -i pipe:0 -f mpegts …" itself, so the agent's usual `setpriv --pdeathsig KILL -- ffmpeg …`
# (ingest/child.ts) happens here: the kernel kills ffmpeg when the agent dies. exec keeps one pid,
# so the agent's signals reach ffmpeg. Without setpriv, ffmpeg still ends at the end of its stdin.
if command -v setpriv >/dev/null 2>&1; then
  exec setpriv --pdeathsig KILL -- ffmpeg "$@"
fi
exec ffmpeg "$@"
