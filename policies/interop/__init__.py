"""Teams trained elsewhere: reading PyMARL/EPyMARL and safetensors weights without running
code (`import_weights`, `team_import`) and writing them back out (`export`)."""
