"""Slides renderer: an MP4 slideshow of a job's content, drawn with Pillow, encoded with PyAV.

Usage: ``python -m activities.slides INPUT_JSON OUTPUT_MP4``. Exit code 3 means the input is
invalid; any other non-zero exit is a failure worth retrying.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

EXIT_INVALID_INPUT = 3
WIDTH, HEIGHT = 854, 480
FPS = 12
SECONDS_PER_SLIDE = 2.5
BACKGROUND = (18, 24, 38)
TITLE_COLOR = (255, 204, 77)
TEXT_COLOR = (235, 238, 245)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def build_slides(content: dict) -> list[Image.Image]:
    """Draw a title slide, a text slide and one slide per step."""
    title_font, body_font = _font(40), _font(26)
    slides = []

    def slide(heading: str, body: str) -> Image.Image:
        image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
        draw = ImageDraw.Draw(image)
        draw.multiline_text((40, 36), textwrap.fill(heading, 34), font=title_font, fill=TITLE_COLOR)
        draw.line((40, 140, WIDTH - 40, 140), fill=TITLE_COLOR, width=3)
        draw.multiline_text(
            (40, 165), textwrap.fill(body, 58)[:900], font=body_font, fill=TEXT_COLOR
        )
        return image

    slides.append(slide(content["title"], ""))
    slides.append(slide(content["title"], content["text"]))
    steps = content.get("steps") or []
    for number, step in enumerate(steps, 1):
        slides.append(slide(f"Step {number} of {len(steps)}", step))
    return slides


def encode(slides: list[Image.Image], output: Path) -> None:
    with av.open(str(output), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for image in slides:
            frame = av.VideoFrame.from_image(image)
            for _ in range(int(FPS * SECONDS_PER_SLIDE)):
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m activities.slides INPUT_JSON OUTPUT_MP4\n")
        return EXIT_INVALID_INPUT
    input_path, output = Path(argv[0]), Path(argv[1])
    try:
        content = json.loads(input_path.read_text(encoding="utf-8"))["content"]
        if not content["title"] or not content["text"]:
            raise ValueError("title and text must not be empty")
    except (OSError, ValueError, KeyError, TypeError) as err:
        sys.stderr.write(f"invalid job input {input_path}: {err}\n")
        return EXIT_INVALID_INPUT
    encode(build_slides(content), output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
