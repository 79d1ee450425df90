"""Built-in Manim scene: draws a job's title, text and steps as an animated explainer.

Run by the ``manim`` command with ``VIDEOQ_JOB_INPUT`` naming the job's JSON file. The job's
content is only ever drawn as text; nothing from it is executed. Exit code 3 means the input is
invalid.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap

from manim import (
    DOWN,
    LEFT,
    UP,
    Create,
    FadeIn,
    FadeOut,
    Line,
    Scene,
    Text,
    VGroup,
    Write,
    config,
)

EXIT_INVALID_INPUT = 3


def _load_content() -> dict:
    path = os.environ.get("VIDEOQ_JOB_INPUT")
    if not path:
        sys.stderr.write("VIDEOQ_JOB_INPUT is not set\n")
        sys.exit(EXIT_INVALID_INPUT)
    try:
        with open(path, encoding="utf-8") as file:
            content = json.load(file)["content"]
        if not content["title"] or not content["text"]:
            raise ValueError("title and text must not be empty")
    except (OSError, ValueError, KeyError, TypeError) as err:
        sys.stderr.write(f"invalid job input {path}: {err}\n")
        sys.exit(EXIT_INVALID_INPUT)
    return content


def _paragraph(text: str, width: int, font_size: int) -> Text:
    # Text (Pango) rather than Tex, so no LaTeX installation is needed.
    return Text(textwrap.fill(text, width=width), font_size=font_size, line_spacing=0.8)


class ExplainerScene(Scene):
    def construct(self) -> None:
        content = _load_content()
        max_width = config.frame_width - 1

        title = Text(textwrap.fill(content["title"], 40), font_size=40, weight="BOLD")
        title.scale_to_fit_width(min(title.width, max_width)).to_edge(UP)
        rule = Line(LEFT * 6, -LEFT * 6).next_to(title, DOWN, buff=0.2)
        self.play(Write(title), Create(rule), run_time=1)

        body = _paragraph(content["text"][:400], 56, 24).next_to(rule, DOWN, buff=0.4)
        body.scale_to_fit_width(min(body.width, max_width))
        self.play(FadeIn(body, shift=UP * 0.2), run_time=0.8)
        self.wait(1)

        steps = content.get("steps") or []
        if steps:
            self.play(FadeOut(body), run_time=0.4)
            items = VGroup(
                *(_paragraph(f"{number}. {step}", 60, 22) for number, step in enumerate(steps, 1))
            ).arrange(DOWN, aligned_edge=LEFT, buff=0.25)
            items.next_to(rule, DOWN, buff=0.4)
            if items.height > config.frame_height - 2.5:
                items.scale_to_fit_height(config.frame_height - 2.5)
            if items.width > max_width:
                items.scale_to_fit_width(max_width)
            for item in items:
                self.play(FadeIn(item, shift=LEFT * 0.2), run_time=0.5)
            self.wait(1)
