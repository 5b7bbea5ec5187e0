"""Generation and scoring for chest X-ray reasoning models; never imports Django.

`python -m inference generate` runs a model (local transformers, or any OpenAI-compatible
endpoint such as a vLLM server) over exported cases; `python -m inference score` adds accuracy
and RadRScore to each prediction, with the offline judge (`cxr.radrscore`) or an LLM judge.
torch and transformers are imported only by the local backend, when it is used.
"""
