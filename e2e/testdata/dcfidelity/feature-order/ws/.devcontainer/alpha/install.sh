#!/bin/sh
mkdir -p /usr/local/share/fid
echo alpha >> /usr/local/share/fid/order
