
sst2
	
rte.tsv