
sst2

../outside/passwd