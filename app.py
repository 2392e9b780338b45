"""Start the TTS Explorer web app on the embedded default model (HOST, PORT from the environment)."""

from tts_explorer.ui import launch

if __name__ == "__main__":
    launch()
