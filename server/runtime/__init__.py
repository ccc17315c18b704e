"""The running process: settings, the services it holds, the web app, the embedded Redis, logs, loops."""
