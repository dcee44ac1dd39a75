"""Imported first by the sweep's fork server (:data:`varstruct.study.executors.PRELOAD`): it
ignores SIGINT while the server imports torch and the trainer, so a Ctrl-C during start-up
stops the sweep with one line instead of a traceback from the server's imports. Pool workers
forked from the server restore the default handler (:func:`varstruct.study.executors.worker_init`).
Never import it elsewhere."""
import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
