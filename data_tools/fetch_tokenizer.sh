#!/usr/bin/env bash
# Placeholder until the data pipeline lands: the tokenizer fetch is written with the tokenizer.
exit 0
