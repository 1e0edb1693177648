from fraudit.cli import main

main()
