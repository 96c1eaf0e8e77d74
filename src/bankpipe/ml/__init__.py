"""Fraud and status models: features, training, registry, batch/real-time scoring, monitoring, report.

    from bankpipe.ml import train, score, monitor, report
    train.run(settings, "fraud")            # bankpipe ml train --target fraud
    score.run(settings)                     # bankpipe ml score
    monitor.run(settings)                   # refresh gold.ml_model_metrics
    report.run(settings)                    # bankpipe ml report
    stream.follow(settings, on_loaded=score.realtime_hook(settings))   # real-time scoring

Submodules are imported on use: MLflow and scikit-learn take seconds to import, and the CLI should
start fast for commands that do not need them.
"""
