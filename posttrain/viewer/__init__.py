"""The dataset viewer (web pages); its logic lives in posttrain.platform."""
