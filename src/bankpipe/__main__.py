from bankpipe.cli import app

app()
