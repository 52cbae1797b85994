
nope	



x