"""predict's side: an export's runtimes (SavedModel, LiteRT, ONNX), the windows a long video or a
camera stream is cut into, and the timeline of their classes. pipeline/predict.py is the command."""
