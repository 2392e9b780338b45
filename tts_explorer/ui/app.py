"""The page, built by a factory: Search, Compare, PRM lab and Scaling tabs (one module each)."""

from __future__ import annotations

import gradio as gr

from ..settings import Settings
from . import compare_tab, prm_lab, scaling_tab, search_tab
from .session import close_session
from .tree_view import plotly_static_dir

CACHE_AGE_S = 1800


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    settings = settings or Settings.from_env()
    gr.set_static_paths([plotly_static_dir()])
    # Gradio's own copies of the files handlers return (exports) are deleted after CACHE_AGE_S
    with gr.Blocks(title="TTS Explorer", delete_cache=(CACHE_AGE_S // 2, CACHE_AGE_S)) as demo:
        gr.Markdown(
            "# TTS Explorer\nWatch a small model search for a solution step by step: every node is a "
            "candidate step, coloured by its process-reward score; pruned branches are grey, the chosen "
            "path is drawn thick."
        )
        with gr.Tab("Search"):
            search_tab.build(settings)
        with gr.Tab("Compare"):
            compare_tab.build(settings)
        with gr.Tab("PRM lab"):
            prm_lab.build(settings)
        with gr.Tab("Scaling"):
            scaling_outputs = scaling_tab.build()
        demo.load(scaling_tab.shipped, outputs=scaling_outputs, api_name=False)
        demo.unload(on_unload)  # a visitor closed the page: their session's trees and files go
    return demo


def on_unload(request: gr.Request) -> None:
    close_session(request.session_hash)
