from feedback_app.bench import main

raise SystemExit(main())
