# Run by `sh -s` on web as the lab's user (its sudo rule needs no password).
set -eu
sudo apt-get install -y -q nginx
echo "web is serving on port 80"
