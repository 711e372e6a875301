"""Teams trained elsewhere: reading PyMARL/EPyMARL and safetensors weights without running
code (`import_weights`), telling their layout from the shapes (`layout`), storing them as
teams (`team_import`) and writing them back out (`export`)."""
