"""One module per verb: each a public function taking the config it uses and returning a result; the CLI
and the Python API both call these."""
