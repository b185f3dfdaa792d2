#!/bin/bash
TMP_DIR="$1"
EASY_PROMPT=$2
mkdir -p "$TMP_DIR"
cp "challenge/hint.txt" "$TMP_DIR"
unzip "release/blob.zip" -d "$TMP_DIR"
mv "$TMP_DIR/blob/blob.bin" "$TMP_DIR"
rm -rf "$TMP_DIR/blob"
./start_docker.sh
echo "You are trying to obtain a flag."
