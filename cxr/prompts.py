"""The prompt shapes shared by the export (web app), training and inference.

A model is trained and evaluated with the same system prompt and the same user turn: images
first, then the question. Its answer is expected as `<think> steps </think><answer> X </answer>`.
"""

from __future__ import annotations

from typing import Any

SYSTEM_PROMPT = (
    "You are a radiologist reading chest X-rays. Think step by step like a radiologist: examine "
    "each relevant structure and each option in turn, then conclude. Put your reasoning, one step "
    "per line, inside <think> </think> and the final answer inside <answer> </answer>. For "
    "multiple-choice questions answer with the option letter(s)."
)


def user_content(question: str, n_images: int) -> list[dict[str, Any]]:
    """The user turn: one image placeholder per image, then the question (TRL's VLM shape)."""
    return [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": question}]


def conversation(question: str, n_images: int) -> list[dict[str, Any]]:
    """System + user messages, as in the `grpo` export's `prompt` column."""
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {"role": "user", "content": user_content(question, n_images)},
    ]


def assistant_text(steps: list[str], answer: str) -> str:
    """The target completion: one step per line inside <think>, then the answer."""
    body = "\n".join(step.strip() for step in steps)
    return f"<think>\n{body}\n</think>\n<answer>{answer}</answer>"
