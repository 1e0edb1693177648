"""The test zoo: clean and backdoored face models, built reproducibly (thesis ch. 3–4)."""
