"""Frames per second of the desktop client with a crowd in view, against Arcade drawing the same scene alone.

A server (no inference) serves a 40x22 meadow — exactly one 1280x720 screen — and N bots walk around in it at
5 steps per second. The real client logs in, and its frames are counted for --seconds while every llama glides,
its name is drawn and the HUD updates. The baseline draws the same map, N llama sprites and N name labels with
nothing else (no network thread, no interpolation, no HUD) in the same window. Both run the way arcade.run()
does: the window's clock draws at its draw rate (60 per second at most). Runs on a virtual display (Xvfb,
Mesa's software OpenGL: a real GPU is much faster), so the figures are a floor.

    ./dev bench client_fps [--bots 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.walkers import free_port, machine  # noqa: E402
from server.tools.scaffold import meadow_map, new_world, tile_ids  # noqa: E402


def virtual_display() -> subprocess.Popen | None:
    if os.environ.get("DISPLAY"):
        return None
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    os.environ["DISPLAY"] = f":{xvfb.stdout.readline().strip()}"
    return xvfb


def crowd_world(tmp: Path) -> Path:
    world = new_world(tmp / "crowd")
    tsj = world / "tilesets" / "llama-land.tsj"
    (world / "maps" / "meadow.tmj").write_text(json.dumps(meadow_map(tile_ids(tsj), 40, 22, spawn_size=16)))
    (world / "npcs" / "pip.toml").unlink()
    doc = json.loads((world / "maps" / "meadow.tmj").read_text())
    next(lay for lay in doc["layers"] if lay["name"] == "npcs")["objects"] = []
    (world / "maps" / "meadow.tmj").write_text(json.dumps(doc))
    return world


async def crowd(url: str, n: int, rate: float, seconds: float) -> None:
    """N players who register and wander, and read their frames without decoding them: the load generator must
    not eat the cores the client is measured on (GameClient bots decode every tick, 200 x 10 a second)."""
    import asyncio
    import random

    import msgpack
    from websockets.asyncio.client import connect

    async def one(i: int) -> None:
        rng = random.Random(i)
        async with connect(url, max_size=2**22, compression=None) as ws:
            for msg in ({"Action": "Hello", "Version": 1, "Id": "h"},
                        {"Action": "Register", "Name": f"crowd{i}", "Password": "bench-pw", "Id": "r"}):
                await ws.send(msgpack.packb(msg))

            async def drain() -> None:
                async for _ in ws:
                    pass

            reader = asyncio.create_task(drain())
            heading = rng.choice("NSEW")
            end = asyncio.get_running_loop().time() + seconds
            while asyncio.get_running_loop().time() < end:
                await asyncio.sleep(1 / rate * rng.uniform(0.8, 1.2))
                if rng.random() < 0.2:
                    heading = rng.choice("NSEW")
                await ws.send(msgpack.packb({"Action": "Move", "Dir": heading}))
            reader.cancel()

    sem = asyncio.Semaphore(32)

    async def gated(i: int) -> None:
        async with sem:
            pass
        await one(i)

    await asyncio.gather(*(gated(i) for i in range(n)), return_exceptions=True)


def count_frames(window, frames: list[float], seconds: float) -> tuple[float, list[float]]:
    """Run the window as arcade.run would (its clock draws at the draw rate, 60/s at most); frames is the list the
    view appends a timestamp to on each draw."""
    import pyglet

    frames.clear()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        window.switch_to()
        window.dispatch_events()
        pyglet.clock.tick()
    gaps = sorted((b - a) * 1000 for a, b in zip(frames, frames[1:]))
    return len(frames) / (time.perf_counter() - start), gaps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bots", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=5.0, help="steps per second per bot (default: 5)")
    ap.add_argument("--nice", type=int, default=0, help="run the server and the crowd at this nice level (19: as if "
                                                      "they ran on another machine; default 0: equal shares)")
    ap.add_argument("--crowd", help=argparse.SUPPRESS)  # internal: run the crowd against this URL
    args = ap.parse_args()
    if args.crowd:
        import asyncio

        asyncio.run(crowd(args.crowd, args.bots, args.rate, args.seconds))
        return
    xvfb = virtual_display()
    tmp = Path(tempfile.mkdtemp(prefix="llama-fps-"))
    port = free_port()
    url = f"ws://127.0.0.1:{port}/"
    world = crowd_world(tmp)
    nice = ["nice", "-n", str(args.nice)] if args.nice else []
    llama_land = [*nice, sys.executable, "-m", "server.cli"]
    server = subprocess.Popen([*llama_land, "serve", "--world", str(world), "--db", f"sqlite:///{tmp / 'f.db'}",
                               "--port", str(port), "--no-inference", "--scrypt-n", "256"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bots = None
    try:
        import arcade
        import pyglet

        from client.app import GameWindow
        from client.art import llama_texture
        from client.driver import pump

        time.sleep(3)
        bots = subprocess.Popen([*nice, sys.executable, __file__, "--crowd", url, "--bots", str(args.bots), "--rate",
                                 str(args.rate), "--seconds", str(args.seconds * 2 + 60)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        window = GameWindow(url, world)
        login = window.current_view
        login.name_input.text, login.password_input.text = "watcher", "pw-secret"
        login.submit(register=True)
        pump(window, 20, until=lambda: type(window.current_view).__name__ == "PlayView")
        play = window.current_view
        pump(window, 60, until=lambda: play.scene is not None and len(play.scene.llamas) > args.bots * 0.95)
        pump(window, 3)
        in_view = len(play.scene.llamas)
        stamps: list[float] = []
        drawn = play.on_draw_done
        play.on_draw_done = lambda: stamps.append(time.perf_counter())
        fps, frames = count_frames(window, stamps, args.seconds)
        play.on_draw_done = drawn
        frames.sort()
        print(f"machine: {machine()}; display: Xvfb 1280x720, {window.ctx.gl_version} ({os.environ['DISPLAY']})")
        print(f"client: {in_view} llamas in view ({args.bots} players walking at {args.rate:g} steps/s), window "
              f"{window.width}x{window.height}; server and crowd on the same cores at nice {args.nice}")
        print(f"  llama-land client: {fps:6.1f} fps  (frame interval p50 {frames[len(frames) // 2]:.1f} ms, "
              f"p95 {frames[int(len(frames) * 0.95)]:.1f} ms; the window draws at most 60/s)")
        # Baseline: arcade alone, the same map, sprites and labels, nothing else.
        scene = play.scene
        sprites = arcade.SpriteList()
        batch = pyglet.graphics.Batch()
        labels = []
        for llama in scene.llamas.values():
            s = arcade.Sprite(llama_texture())
            s.position = llama.sprite.position
            sprites.append(s)
            labels.append(arcade.Text(llama.name, s.center_x, s.center_y + 18, arcade.color.WHITE, 10,
                                      anchor_x="center", batch=batch))
        camera = play.camera

        raw_stamps: list[float] = []

        class ArcadeAlone(arcade.View):
            def on_draw(self) -> None:
                self.clear()
                camera.use()
                scene.scene.draw()
                sprites.draw()
                batch.draw()
                raw_stamps.append(time.perf_counter())

        window.show_view(ArcadeAlone())
        raw_fps, raw_frames = count_frames(window, raw_stamps, args.seconds)
        print(f"  arcade alone:      {raw_fps:6.1f} fps  -> client / arcade = {fps / raw_fps:.2f}")
        window.net.stop()
        window.close()
    finally:
        for proc in (bots, server):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=20)
        if xvfb is not None:
            xvfb.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
