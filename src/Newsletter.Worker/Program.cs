using Newsletter.Worker.Cli;

return await NewsletterCli.RunAsync(args);
