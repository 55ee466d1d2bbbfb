from rap_pipeline.cli import main

main()
