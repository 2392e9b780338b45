"""Start the TTS Explorer web app (see tts_explorer/ui). Reads HOST and PORT."""
import os

from tts_explorer.ui import build_demo

if __name__ == "__main__":
    demo = build_demo()
    demo.queue(default_concurrency_limit=1, max_size=32).launch(
        server_name=os.environ.get("HOST", "0.0.0.0"), server_port=int(os.environ.get("PORT", "7860")))
