from benchfleet.cli import main

main()
